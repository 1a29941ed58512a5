from robotrader.cli import app

app(prog_name="robotrader")

"""Trading strategies: declared parameters and one pure function from candles to signals.

A regular package (not a namespace one) so that import-linter sees its modules.
"""

"""trades indexed by bot and close time

The tick sums today's realised PnL of every bot with a daily loss limit. With
trades indexed by bot alone, that read every trade the bot ever made, each tick:
the cost grew with the bot's whole history. (bot_id, closed_at) serves the day's
range directly, and every lookup by bot alone as before.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 12:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('trades', schema=None) as batch_op:
        batch_op.create_index('ix_trades_bot_closed', ['bot_id', 'closed_at'], unique=False)
        batch_op.drop_index(batch_op.f('ix_trades_bot_id'))


def downgrade() -> None:
    with op.batch_alter_table('trades', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_trades_bot_id'), ['bot_id'], unique=False)
        batch_op.drop_index('ix_trades_bot_closed')

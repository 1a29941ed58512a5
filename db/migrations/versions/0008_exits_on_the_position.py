"""exits a trader shapes: trailing stop, take-profit targets, breakeven; their state on the position

- ``bots.trailing_stop_pct`` / ``bots.trailing_arm_pct``: sell everything when price falls
  that far under the highest price since entry, once the position has gained the arming
  profit (armed from the entry when it is null).
- ``bots.take_profit_targets``: up to four partial exits, ``[[profit_pct, share_pct], ...]``
  as decimal strings, each selling a share of the position as it was entered.
- ``bots.breakeven_after_target``: after the first target, the stop moves to the entry.
- ``positions.highest_price`` and ``positions.targets_hit``: what those rules remember
  between ticks, kept with the position so a restart keeps it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 20:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.types

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('bots', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trailing_stop_pct', db.types.Money(precision=38, scale=18), nullable=True))
        batch_op.add_column(sa.Column('trailing_arm_pct', db.types.Money(precision=38, scale=18), nullable=True))
        batch_op.add_column(sa.Column('take_profit_targets', db.types.JSONType, nullable=True))
        batch_op.add_column(
            sa.Column('breakeven_after_target', sa.Boolean(), nullable=False, server_default=sa.text('false'))
        )
    with op.batch_alter_table('positions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('highest_price', db.types.Money(precision=38, scale=18), nullable=True))
        batch_op.add_column(sa.Column('targets_hit', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('positions', schema=None) as batch_op:
        batch_op.drop_column('targets_hit')
        batch_op.drop_column('highest_price')
    with op.batch_alter_table('bots', schema=None) as batch_op:
        batch_op.drop_column('breakeven_after_target')
        batch_op.drop_column('take_profit_targets')
        batch_op.drop_column('trailing_arm_pct')
        batch_op.drop_column('trailing_stop_pct')

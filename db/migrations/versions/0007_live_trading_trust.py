"""live trading a trader can trust: budgets, archived bots, order leases

- ``bot_results``: every closed trade's PnL summed per bot, so the tick reads a
  bot's budget (capital plus realised PnL) without summing its history. A table
  of its own, written only after the positions it follows are locked: the bot
  row is locked first by other writers (start, stop, kill switch), and one lock
  order avoids deadlocks. Backfilled from the trades.
- ``bots.archived_at``: deleting a bot archives it; its orders, fills and trades
  stay. Names are unique among a user's bots that are not archived (a partial
  unique index on both databases), so a deleted bot's name can be used again.
- ``bots.liquidating_since``: the kill switch asked to sell everything; what an
  order in flight leaves is sold once that order settles.
- ``orders.claimed_until``: one process at a time talks to the exchange about an
  order; a crashed one's claim runs out.
- ``orders.last_sent_at``: when the order was last sent; a lookup that finds
  nothing sooner after it does not prove the order absent.
- ``ix_orders_unsettled``: the tick reads the orders the exchange has not settled at
  every tick; a partial index keeps that read as small as they are few.
- ``orders.expires_at``: a resting limit order not filled by then is cancelled on
  the exchange (its filled part booked).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 17:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.types

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = sa.text('archived_at IS NULL')
UNSETTLED = sa.text("status IN ('pending', 'open')")


def upgrade() -> None:
    with op.batch_alter_table('bots', schema=None) as batch_op:
        batch_op.add_column(sa.Column('archived_at', db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column('liquidating_since', db.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.drop_constraint('uq_bots_user_id_name', type_='unique')
        batch_op.create_index(
            'uq_bots_user_active_name', ['user_id', 'name'], unique=True,
            sqlite_where=ACTIVE, postgresql_where=ACTIVE,
        )
    op.create_table('bot_results',
    sa.Column('bot_id', sa.Integer(), nullable=False),
    sa.Column('realized_pnl', db.types.Money(precision=38, scale=18), nullable=False),
    sa.Column('updated_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['bot_id'], ['bots.id'], name=op.f('fk_bot_results_bot_id_bots'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('bot_id', name=op.f('pk_bot_results'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_until', db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('expires_at', db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_sent_at', db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(
            'ix_orders_unsettled', ['bot_id'], unique=False,
            sqlite_where=UNSETTLED, postgresql_where=UNSETTLED,
        )

    # Backfill each bot's realised PnL from its trades, exactly (SQLite keeps Money as text).
    bind = op.get_bind()
    totals: dict[int, object] = {}
    from decimal import Decimal

    for bot_id, pnl in bind.execute(sa.text('SELECT bot_id, pnl FROM trades')):
        totals[bot_id] = totals.get(bot_id, Decimal(0)) + Decimal(str(pnl))  # type: ignore[operator]
    if totals:
        sqlite = bind.dialect.name == 'sqlite'
        bind.execute(
            sa.text(
                'INSERT INTO bot_results (bot_id, realized_pnl, updated_at) '
                'VALUES (:bot_id, :pnl, CURRENT_TIMESTAMP)'
            ),
            [
                {'bot_id': bot_id, 'pnl': format(total, 'f') if sqlite else total}
                for bot_id, total in totals.items()
            ],
        )


def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_unsettled')
        batch_op.drop_column('last_sent_at')
        batch_op.drop_column('expires_at')
        batch_op.drop_column('claimed_until')
    op.drop_table('bot_results')
    with op.batch_alter_table('bots', schema=None) as batch_op:
        batch_op.drop_index('uq_bots_user_active_name')
        batch_op.create_unique_constraint('uq_bots_user_id_name', ['user_id', 'name'])
        batch_op.drop_column('liquidating_since')
        batch_op.drop_column('archived_at')

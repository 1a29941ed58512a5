"""bot signals and order attempts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 01:52:21.897239
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.types


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('bot_signals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bot_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=8), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=True),
    sa.Column('price', db.types.Money(precision=38, scale=18), nullable=True),
    sa.Column('amount', db.types.Money(precision=38, scale=18), nullable=True),
    sa.Column('received_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('consumed_at', db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['bot_id'], ['bots.id'], name=op.f('fk_bot_signals_bot_id_bots'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bot_signals'))
    )
    with op.batch_alter_table('bot_signals', schema=None) as batch_op:
        batch_op.create_index('ix_bot_signals_pending', ['bot_id', 'consumed_at'], unique=False)

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('submit_attempts', sa.Integer(), nullable=False, server_default='0')
        )
        batch_op.add_column(sa.Column('candle_time', sa.BigInteger(), nullable=True))




def downgrade() -> None:

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('candle_time')
        batch_op.drop_column('submit_attempts')

    with op.batch_alter_table('bot_signals', schema=None) as batch_op:
        batch_op.drop_index('ix_bot_signals_pending')

    op.drop_table('bot_signals')


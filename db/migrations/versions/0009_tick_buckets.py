"""bots carry their owner's tick bucket, indexed with the status

A tick shard was the running bots whose id modulo the number of shards is the
shard's: no index serves that, so every shard of every tick read all running bots
(and joined them again for positions and signals). ``bots.tick_bucket`` (the low 10 bits
of the owner's id, reversed: db.models.bots.tick_bucket_of) makes a shard a range of buckets, read through
``ix_bots_status_bucket``; a user's bots share one shard, so two shards running at
once never wait for each other's lock on one user's paper balances.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 21:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


BITS = 10
# tick_bucket_of in SQL both databases run: bit k of the id becomes bit 9 - k.
REVERSED_LOW_BITS = ' + '.join(
    f'((user_id / {1 << k}) % 2) * {1 << (BITS - 1 - k)}' for k in range(BITS)
)


def upgrade() -> None:
    with op.batch_alter_table('bots', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tick_bucket', sa.Integer(), nullable=True))
    op.execute(f'UPDATE bots SET tick_bucket = {REVERSED_LOW_BITS}')
    with op.batch_alter_table('bots', schema=None) as batch_op:
        batch_op.alter_column('tick_bucket', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_index('ix_bots_status_shard')
        batch_op.create_index('ix_bots_status_bucket', ['status', 'tick_bucket'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('bots', schema=None) as batch_op:
        batch_op.drop_index('ix_bots_status_bucket')
        batch_op.create_index('ix_bots_status_shard', ['status', 'id'], unique=False)
        batch_op.drop_column('tick_bucket')

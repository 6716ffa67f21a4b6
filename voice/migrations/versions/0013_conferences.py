"""conferences: who is in each call's conference (conference_participants); a held caller's Twilio queue and
when they were sent into their conference (holds); the phone a coordinator listens on (a specialist who may
supervise has the skill `supervisor`, 0011)

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'conference_participants',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('call_id', sa.Integer(), sa.ForeignKey('calls.id', ondelete='CASCADE'), nullable=False),
        sa.Column('conference_sid', sa.String(length=34), nullable=False, server_default=''),
        sa.Column('call_sid', sa.String(length=64), nullable=False),
        sa.Column('label', sa.String(length=40), nullable=False),
        sa.Column('specialist_id', sa.Integer(), sa.ForeignKey('specialists.id'), nullable=True),
        sa.Column('user_id', sa.Integer(), sa.ForeignKey('users.id'), nullable=True),
        sa.Column('detail', sa.String(length=80), nullable=True),
        sa.Column('added_at', sa.DateTime(), nullable=False),
        sa.Column('joined_at', sa.DateTime(), nullable=True),
        sa.Column('left_at', sa.DateTime(), nullable=True),
        sa.Column('left_reason', sa.String(length=40), nullable=True),
        sa.Column('on_hold', sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index('ix_conference_participants_call', 'conference_participants', ['call_id', 'id'])
    op.create_index('ix_conference_participants_live', 'conference_participants', ['left_at', 'call_id'])
    op.create_index('ix_conference_participants_sid', 'conference_participants', ['call_sid'])
    op.add_column('holds', sa.Column('queue_sid', sa.String(length=34), nullable=True))
    op.add_column('holds', sa.Column('conference_at', sa.DateTime(), nullable=True))
    op.add_column('users', sa.Column('phone', sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users') as batch_op:
        batch_op.drop_column('phone')
    op.drop_column('holds', 'conference_at')
    op.drop_column('holds', 'queue_sid')
    op.drop_index('ix_conference_participants_sid', table_name='conference_participants')
    op.drop_index('ix_conference_participants_live', table_name='conference_participants')
    op.drop_index('ix_conference_participants_call', table_name='conference_participants')
    op.drop_table('conference_participants')

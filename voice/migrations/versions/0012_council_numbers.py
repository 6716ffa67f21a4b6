"""the council's numbers: why a call went back to 911 (a code), its area (ZIP code and street), specialists'
shifts, the directory of services and the referrals given, the outcome reports sent to the 911 center; follow-up
calls marked as such

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

# The outcome_reason texts the line wrote before the code existed (voice/line/intake.py, waiting.py, endings.py).
_REASONS = {
    'danger reported': 'danger',
    'caller asked for dispatch': 'caller_asked',
    'no answer to the safety question': 'no_safety_answer',
    'transferred to dispatch by the specialist': 'specialist_transfer',
}


# Plain ALTERs, not a batch, on `calls`: a batch would rebuild it without ix_calls_caller_name_lower (see 0008).
def upgrade() -> None:
    op.add_column('calls', sa.Column('escalation_reason', sa.String(length=24), nullable=True))
    op.add_column('calls', sa.Column('zip_code', sa.String(length=10), nullable=True))
    op.add_column('calls', sa.Column('street', sa.String(length=80), nullable=True))
    calls = sa.table('calls', sa.column('outcome', sa.String), sa.column('outcome_reason', sa.String),
                     sa.column('escalation_reason', sa.String), sa.column('call_sid', sa.String),
                     sa.column('source', sa.String))
    for text, code in _REASONS.items():
        op.execute(calls.update().where(calls.c.outcome == 'escalated', calls.c.outcome_reason == text)
                   .values(escalation_reason=code))
    op.execute(calls.update().where(calls.c.outcome == 'escalated', calls.c.outcome_reason.like('hold ended:%'))
               .values(escalation_reason='hold_failed'))
    # Follow-up calls (voice/line/callbacks.py queue_follow_up) were written with the default source.
    op.execute(calls.update().where(calls.c.call_sid.like('followup-%')).values(source='follow_up'))
    op.create_index('ix_case_events_kind_at', 'case_events', ['kind', 'at'])
    op.create_table('shifts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('specialist_id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['specialist_id'], ['specialists.id']),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_shifts_specialist_open', 'shifts', ['specialist_id', 'ended_at'])
    op.create_index('ix_shifts_started', 'shifts', ['started_at'])
    op.create_table('services',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('referrals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('accepted', sa.Boolean(), nullable=False),
    sa.Column('given_at', sa.DateTime(), nullable=False),
    sa.Column('given_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['service_id'], ['services.id']),
    sa.ForeignKeyConstraint(['given_by_id'], ['users.id']),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('call_id', 'service_id')
    )
    op.create_table('outcome_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=8), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('closed_at', sa.DateTime(), nullable=False),
    sa.Column('incident_number', sa.String(length=40), nullable=True),
    sa.Column('police_needed', sa.Boolean(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=200), nullable=True),
    sa.Column('last_attempt_at', sa.DateTime(), nullable=True),
    sa.Column('delivered_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('subject', 'subject_id', 'outcome')
    )
    op.create_index('ix_outcome_reports_status', 'outcome_reports', ['status', 'last_attempt_at'])
    op.create_index('ix_outcome_reports_closed', 'outcome_reports', ['closed_at'])


def downgrade() -> None:
    op.drop_index('ix_outcome_reports_closed', table_name='outcome_reports')
    op.drop_index('ix_outcome_reports_status', table_name='outcome_reports')
    op.drop_table('outcome_reports')
    op.drop_table('referrals')
    op.drop_table('services')
    op.drop_index('ix_shifts_started', table_name='shifts')
    op.drop_index('ix_shifts_specialist_open', table_name='shifts')
    op.drop_table('shifts')
    op.drop_index('ix_case_events_kind_at', table_name='case_events')
    op.drop_column('calls', 'street')
    op.drop_column('calls', 'zip_code')
    op.drop_column('calls', 'escalation_reason')

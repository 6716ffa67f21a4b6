"""cases: calls grouped by situation, in-person visits and their teams, the texts sent about them,
calendar feed tokens

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('opened_at', sa.DateTime(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.Column('closed_how', sa.String(length=16), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('merged_into_id', sa.Integer(), nullable=True),
    sa.Column('follow_up_due_at', sa.DateTime(), nullable=True),
    sa.Column('follow_up_note', sa.String(length=300), nullable=True),
    sa.Column('follow_up_request_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['merged_into_id'], ['cases.id']),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_cases_status_opened', 'cases', ['status', 'opened_at'])
    op.create_table('case_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id']),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_case_events_case', 'case_events', ['case_id', 'id'])
    op.create_table('visits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', sa.DateTime(), nullable=False),
    sa.Column('ends_at', sa.DateTime(), nullable=False),
    sa.Column('address', sa.String(length=300), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('contact_number', sa.String(length=20), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.Column('outcome_notes', sa.Text(), nullable=True),
    sa.Column('outcome_at', sa.DateTime(), nullable=True),
    sa.Column('cancel_reason', sa.String(length=300), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id']),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id']),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_visits_status_starts', 'visits', ['status', 'starts_at'])
    op.create_index('ix_visits_case', 'visits', ['case_id'])
    op.create_table('visit_members',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('visit_id', sa.Integer(), nullable=False),
    sa.Column('specialist_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['visit_id'], ['visits.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['specialist_id'], ['specialists.id']),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('visit_id', 'specialist_id')
    )
    op.create_index('ix_visit_members_specialist', 'visit_members', ['specialist_id'])
    op.create_table('visit_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('visit_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('recipient', sa.String(length=32), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('message_sid', sa.String(length=64), nullable=True),
    sa.Column('error', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['visit_id'], ['visits.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('visit_id', 'kind', 'version', 'recipient')
    )
    # Plain ADD COLUMNs: a batch would rebuild `calls` on SQLite and drop its expression index
    # ix_calls_caller_name_lower. SQLite cannot add a foreign key to an existing table; PostgreSQL gets one.
    op.add_column('calls', sa.Column('case_id', sa.Integer(), nullable=True))
    op.add_column('calls', sa.Column('location_key', sa.String(length=120), nullable=True))
    op.create_index('ix_calls_case_id', 'calls', ['case_id'])
    op.create_index('ix_calls_location_key', 'calls', ['location_key'])
    op.add_column('specialists', sa.Column('calendar_token', sa.String(length=64), nullable=True))
    op.create_index('ix_specialists_calendar_token', 'specialists', ['calendar_token'], unique=True)
    if op.get_bind().dialect.name != 'sqlite':
        op.create_foreign_key('fk_calls_case_id', 'calls', 'cases', ['case_id'], ['id'])


def downgrade() -> None:
    if op.get_bind().dialect.name != 'sqlite':
        op.drop_constraint('fk_calls_case_id', 'calls', type_='foreignkey')
    op.drop_index('ix_specialists_calendar_token', table_name='specialists')
    op.drop_column('specialists', 'calendar_token')
    op.drop_index('ix_calls_location_key', table_name='calls')
    op.drop_index('ix_calls_case_id', table_name='calls')
    op.drop_column('calls', 'location_key')
    op.drop_column('calls', 'case_id')
    op.drop_table('visit_messages')
    op.drop_index('ix_visit_members_specialist', table_name='visit_members')
    op.drop_table('visit_members')
    op.drop_index('ix_visits_case', table_name='visits')
    op.drop_index('ix_visits_status_starts', table_name='visits')
    op.drop_table('visits')
    op.drop_index('ix_case_events_case', table_name='case_events')
    op.drop_table('case_events')
    op.drop_index('ix_cases_status_opened', table_name='cases')
    op.drop_table('cases')

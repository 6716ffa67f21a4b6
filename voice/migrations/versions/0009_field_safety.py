"""field safety: visits checked in and out (when, due back), safety alerts and their ladder, the texts and
calls the ladder makes, and each visit's safety timeline

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('visits', sa.Column('field_state', sa.String(length=16), nullable=True))
    op.add_column('visits', sa.Column('checked_in_at', sa.DateTime(), nullable=True))
    op.add_column('visits', sa.Column('expected_back_at', sa.DateTime(), nullable=True))
    op.add_column('visits', sa.Column('checked_out_at', sa.DateTime(), nullable=True))
    op.create_index('ix_visits_field_state', 'visits', ['field_state'])
    op.create_table('safety_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('visit_id', sa.Integer(), nullable=True),
    sa.Column('specialist_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('rung', sa.String(length=16), nullable=False),
    sa.Column('rung_at', sa.DateTime(), nullable=False),
    sa.Column('opened_at', sa.DateTime(), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=80), nullable=True),
    sa.Column('dispatch_called_at', sa.DateTime(), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('closed_how', sa.String(length=16), nullable=True),
    sa.Column('closed_by_id', sa.Integer(), nullable=True),
    sa.Column('close_note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['visit_id'], ['visits.id']),
    sa.ForeignKeyConstraint(['specialist_id'], ['specialists.id']),
    sa.ForeignKeyConstraint(['closed_by_id'], ['users.id']),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_safety_alerts_open', 'safety_alerts', ['closed_at', 'id'])
    op.create_index('ix_safety_alerts_visit', 'safety_alerts', ['visit_id'])
    op.create_table('safety_contacts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=40), nullable=False),
    sa.Column('rung', sa.String(length=16), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('sid', sa.String(length=64), nullable=True),
    sa.Column('error', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['safety_alerts.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('alert_id', 'purpose')
    )
    op.create_index('ix_safety_contacts_status', 'safety_contacts', ['status', 'id'])
    op.create_table('safety_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('visit_id', sa.Integer(), nullable=True),
    sa.Column('alert_id', sa.Integer(), nullable=True),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('specialist_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('by', sa.String(length=80), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['visit_id'], ['visits.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['alert_id'], ['safety_alerts.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['specialist_id'], ['specialists.id']),
    sa.ForeignKeyConstraint(['user_id'], ['users.id']),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_safety_events_visit', 'safety_events', ['visit_id', 'id'])
    op.create_index('ix_safety_events_alert', 'safety_events', ['alert_id', 'id'])


def downgrade() -> None:
    op.drop_index('ix_safety_events_alert', table_name='safety_events')
    op.drop_index('ix_safety_events_visit', table_name='safety_events')
    op.drop_table('safety_events')
    op.drop_index('ix_safety_contacts_status', table_name='safety_contacts')
    op.drop_table('safety_contacts')
    op.drop_index('ix_safety_alerts_visit', table_name='safety_alerts')
    op.drop_index('ix_safety_alerts_open', table_name='safety_alerts')
    op.drop_table('safety_alerts')
    op.drop_index('ix_visits_field_state', table_name='visits')
    op.drop_column('visits', 'checked_out_at')
    op.drop_column('visits', 'expected_back_at')
    op.drop_column('visits', 'checked_in_at')
    op.drop_column('visits', 'field_state')

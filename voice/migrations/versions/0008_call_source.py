"""calls: where each call came from (a 911 transfer, a dispatcher's handoff, the public line) and the 911
center's incident number (CAD), on the call and its case

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


# Plain ALTERs, not a batch: SQLite adds and drops a column in place, and a batch would rebuild `calls`
# without ix_calls_caller_name_lower, an expression index that reflection cannot see.
def upgrade() -> None:
    op.add_column('calls', sa.Column('source', sa.String(length=16), nullable=False, server_default='911'))
    op.add_column('calls', sa.Column('incident_number', sa.String(length=40), nullable=True))
    op.create_index('ix_calls_source_started', 'calls', ['source', 'started_at'])
    op.create_index('ix_calls_incident_number', 'calls', ['incident_number'])
    op.add_column('cases', sa.Column('incident_number', sa.String(length=40), nullable=True))


def downgrade() -> None:
    op.drop_index('ix_calls_incident_number', table_name='calls')
    op.drop_index('ix_calls_source_started', table_name='calls')
    op.drop_column('cases', 'incident_number')
    op.drop_column('calls', 'incident_number')
    op.drop_column('calls', 'source')

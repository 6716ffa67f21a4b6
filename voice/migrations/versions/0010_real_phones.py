"""real phones and networks: the number that forwarded a call (ForwardedFrom), what became of the texts sent to
callers and visit teams (their delivery status and error code), and a specialist's opt-out of texts (STOP)

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


# Plain ALTERs, not a batch: a batch would rebuild `calls` without ix_calls_caller_name_lower (see 0008).
def upgrade() -> None:
    op.add_column('calls', sa.Column('forwarded_from', sa.String(length=32), nullable=True))
    op.add_column('callback_requests', sa.Column('text_status', sa.String(length=16), nullable=True))
    op.add_column('callback_requests', sa.Column('text_error_code', sa.Integer(), nullable=True))
    op.add_column('visit_messages', sa.Column('status', sa.String(length=16), nullable=True))
    op.add_column('specialists', sa.Column('texts_opted_out_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column('specialists', 'texts_opted_out_at')
    op.drop_column('visit_messages', 'status')
    op.drop_column('callback_requests', 'text_error_code')
    op.drop_column('callback_requests', 'text_status')
    op.drop_column('calls', 'forwarded_from')

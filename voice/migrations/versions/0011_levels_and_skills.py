"""specialists: a level (1 or 2) and skills (free-form tags; their languages become language skills); calls: the
level of the specialist who took them and whether routing preferred that specialist

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


# Plain ALTERs, not a batch: SQLite adds and drops a column in place, a batch would rebuild `calls` without
# ix_calls_caller_name_lower (see 0008), and rebuilding `specialists` would drop a table other tables point at.
def upgrade() -> None:
    op.add_column('specialists', sa.Column('level', sa.Integer(), nullable=False, server_default='1'))
    op.add_column('specialists', sa.Column('skills', sa.String(length=400), nullable=False, server_default='en'))
    # Each language a specialist took calls in ("en,es") is a skill of theirs now, by the same code.
    op.execute("UPDATE specialists SET skills = languages WHERE languages IS NOT NULL AND languages <> ''")
    op.drop_column('specialists', 'languages')
    op.add_column('calls', sa.Column('specialist_level', sa.Integer(), nullable=True))
    op.add_column('calls', sa.Column('to_preferred', sa.Boolean(), nullable=True))
    op.create_index('ix_calls_started_level', 'calls', ['started_at', 'specialist_level', 'to_preferred'])


def downgrade() -> None:
    op.drop_index('ix_calls_started_level', table_name='calls')
    op.drop_column('calls', 'to_preferred')
    op.drop_column('calls', 'specialist_level')
    op.add_column('specialists', sa.Column('languages', sa.String(length=40), nullable=False, server_default='en'))
    # Only the languages go back (two-letter skills); other skills and the level have nowhere to go.
    bind = op.get_bind()
    for specialist_id, skills in bind.execute(sa.text("SELECT id, skills FROM specialists")).all():
        codes = ",".join(tag for tag in (skills or "").split(",") if len(tag) == 2)[:40] or "en"
        bind.execute(sa.text("UPDATE specialists SET languages = :codes WHERE id = :id"),
                     {"codes": codes, "id": specialist_id})
    op.drop_column('specialists', 'skills')
    op.drop_column('specialists', 'level')

from estoque.models import metadata
from veloz.data.migrate import run_migrations

run_migrations(metadata)

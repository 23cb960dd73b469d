from lob_common.db import run_migrations_online
from reporting.adapters.tables import Base

run_migrations_online(Base.metadata)

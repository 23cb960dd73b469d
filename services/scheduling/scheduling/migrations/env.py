from lob_common.db import run_migrations_online
from scheduling.adapters.tables import Base

run_migrations_online(Base.metadata)

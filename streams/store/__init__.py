"""The read side: SQL tables projected from the incident topics, and queries over them."""

# the status pages' tables join the store's metadata wherever the store is imported from,
# so the migrations' check and every engine see all the tables
from streams.store import status_tables as _status_tables  # noqa: F401

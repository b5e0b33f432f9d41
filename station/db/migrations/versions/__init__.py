"""One module per schema revision, applied in order by `station.db.migrate.upgrade`."""

"""The secure data environment: governance, the research store, the query language, jobs,
disclosure control, output checking and release. See docs/sde.md."""

"""Jobs: researchers' code run inside the secure data environment, isolated. See docs/sde-jobs.md."""

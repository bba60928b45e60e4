"""Output checking and release: two independent checkers vote on every aggregate output of
a real run after disclosure control; approved files are released (the safe version only) to
the project's researchers. See docs/sde-review.md."""

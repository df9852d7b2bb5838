"""The smart charging service: every site under its grid limit, the most energy delivered."""

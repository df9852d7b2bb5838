"""Active sessions, what each station last accepted, and the allocation that drives them."""

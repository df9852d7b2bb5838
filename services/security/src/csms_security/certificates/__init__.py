"""Station certificates: signing, renewal, installed CA certificates."""

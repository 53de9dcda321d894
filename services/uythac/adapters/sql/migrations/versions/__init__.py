"""One revision per layout of the store, named by the layout's number."""

"""The console's pages, one module per page (each with its ``routes``)."""

"""The course as a book: every chapter executed here and rendered to a static site (scripts/book)."""

"""The part both example apps share: a book catalog that takes about a second to build.

``catalog.model.CATALOG`` stands in for what makes a real app slow to start (an
ML model, an ORM's metadata, a data set loaded into memory). It is made with
``hotmod.keep``, so a reload never builds it again.
"""

"""Watch: debounced batches of changed files (watchfiles' native backend)."""

"""Payment providers: the contract (``base``), the list (``registry``) and the providers."""

"""Channels: how a message leaves (see ``base`` for the contract, ``registry`` for the list)."""

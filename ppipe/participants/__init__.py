"""The participant side: participants and their tokens, requests they answer, judging, a feed and a leaderboard.

The spec keys it acts on (``requests:``, ``leaderboard:``) are in :mod:`ppipe.challenge.requests`;
the Python API is :mod:`ppipe.participants.service`, the HTTP API :mod:`ppipe.participants.http`.
Layer: above ``delivery``, ``data`` and ``ledger``; below ``orchestration``, ``api`` and ``cli``.
"""

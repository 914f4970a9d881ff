"""Scale-out: many ``chattycat serve`` nodes sharing one chat through Redis.

``state`` is the node's sans-IO machine, ``ops`` what it asks of Redis,
``replica`` its view of the cluster's users, ``scripts`` the Lua that makes
each decision atomic in Redis, and ``codec`` the translation between ops and
Redis commands. The wiring is :mod:`chattycat.server.redis_store`.
"""

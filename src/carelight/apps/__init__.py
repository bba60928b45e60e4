"""Server-rendered web apps for people (NHS.UK frontend): ``care`` is the shared care record.

Apps never open the database: they read and write through the data layer with the gate's
access context, and every access is appended to the transparency log first.
"""

"""graphcnn.analysis: read a graph, return data, never change it (the stage before passes).

One analysis per module, each a pure function of a graph returning plain dataclasses:
:mod:`.receptive_field` (every node's receptive field), :mod:`.peak_memory` (liveness peak of a
forward pass, inference and training), :mod:`.roofline` (estimated time per layer on a device
profile from :mod:`graphcnn.analysis.devices`, compute- or memory-bound), :mod:`.advise_bottlenecks`
(cheaper rewrites of the costliest convolutions, priced exactly). :mod:`.report` assembles them
into what ``graphcnn analyze`` prints.
"""

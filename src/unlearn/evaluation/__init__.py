"""Evaluation machinery every task builds on: the requests (batched likelihoods, left-padded generation), the
membership-inference suite (privacy), divergence from the starting model, and the auxiliary models of the utility
metrics. The tasks themselves (their sets, metrics and reports) are one folder each under :mod:`unlearn.tasks`.
"""

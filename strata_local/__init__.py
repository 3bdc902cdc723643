"""The local stack: the same code as in AWS, on one machine, with no AWS account.

Not shipped in the Lambda layer.
"""

"""The test suite (a regular package: a dependency of sagemaker-core installs a top-level ``tests``
package of its own, which would otherwise shadow this one in subprocesses such as schemathesis)."""

"""The developer kit: what a developer or a test suite uses around sqlambda, not what a DBA installs.

``demo`` (the end-to-end demo on a throwaway PostgreSQL and the local stack), ``scenarios`` (AWS-side
setup and read-back of the example scenarios) and ``deploy`` (packaging and deploying the example
Lambdas). The installer library (``sqlambda.api``, ``sqlambda.targets``) never imports this package.
"""

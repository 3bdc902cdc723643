"""The CDK app for Strata's cloud side: ``cdk synth`` or ``python -m infra_cdk.app`` (see ``app``)."""

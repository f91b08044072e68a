"""The maas CDK app: one Construct per concern, composed by `MaasStack`."""

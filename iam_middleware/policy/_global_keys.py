"""IAM's global condition keys (IAM User Guide, "AWS global condition context keys"), for the linter's typo check.

Lower case, as keys compare. Tag keys are prefixes (``aws:PrincipalTag/<tag>``). Kept with the package so the check
runs offline; ``aws:`` keys that AWS's own managed policies use are included even where the page does not list them.
"""

from __future__ import annotations

__all__ = ["GLOBAL_KEYS", "GLOBAL_PREFIXES", "SPELLED"]

#: As the docs spell them (for the linter's suggestions).
SPELLED = (
    # The principal
    "aws:PrincipalArn", "aws:PrincipalAccount", "aws:PrincipalOrgPaths", "aws:PrincipalOrgID",
    "aws:PrincipalOrgMasterAccountId", "aws:PrincipalIsAWSService", "aws:PrincipalServiceName",
    "aws:PrincipalServiceNamesList", "aws:PrincipalType", "aws:userid", "aws:username", "aws:AssumedRoot",
    # The role session
    "aws:FederatedProvider", "aws:TokenIssueTime", "aws:MultiFactorAuthAge", "aws:MultiFactorAuthPresent",
    "aws:ChatbotSourceArn", "aws:Ec2InstanceSourceVpc", "aws:Ec2InstanceSourcePrivateIPv4", "aws:SourceIdentity",
    # The network
    "aws:SourceIp", "aws:SourceVpc", "aws:SourceVpcArn", "aws:SourceVpce", "aws:VpceAccount", "aws:VpceOrgID",
    "aws:VpceOrgPaths", "aws:VpcSourceIp",
    # The resource
    "aws:ResourceAccount", "aws:ResourceOrgID", "aws:ResourceOrgPaths",
    # The request
    "aws:CalledVia", "aws:CalledViaFirst", "aws:CalledViaLast", "aws:ViaAWSService", "aws:CurrentTime",
    "aws:EpochTime", "aws:Referer", "aws:RequestedRegion", "aws:TagKeys", "aws:SecureTransport",
    "aws:SourceAccount", "aws:SourceArn", "aws:SourceOrgID", "aws:SourceOrgPaths", "aws:UserAgent",
    "aws:IsMcpServiceAction", "aws:Arn", "aws:PrincipalTag", "aws:ResourceTag", "aws:RequestTag",
)
GLOBAL_KEYS = frozenset(key.lower() for key in SPELLED if not key.endswith("Tag"))

GLOBAL_PREFIXES = ("aws:principaltag/", "aws:resourcetag/", "aws:requesttag/")

"""`make deploy-local`'s template step (run with the build venv's Python, which has PyYAML):

    deploy_local.py prepare TEMPLATE BIN_DIR OUT_DIR   template.yaml → OUT_DIR/template.yaml, each
        function's code a zip of its host-built binary as `bootstrap` (SAM uploads it under a key
        made of its content hash, so a redeploy updates the code), plus the pre-deploy lowering below
    deploy_local.py routes TEMPLATE                    the route keys the lowering creates, one a line
    deploy_local.py prepare … --without-policies FUNCTION   the same, that function's policies removed
        (the acceptance tests' IAM negative check)

The lowering: the emulator ignores the OpenAPI `Body` through which SAM expresses an `HttpApi`, so
the API would have no routes. For every `HttpApi` event of a function this adds native
`AWS::ApiGatewayV2::Integration` and `Route` resources (no authorizer: the functions authenticate
their callers); the SAM events stay (they grant API Gateway the invoke permissions). template.yaml
itself stays the one source.

Also: a queue mapping's `ScalingConfig.MaximumConcurrency` given as `!Ref` to a Number parameter
reaches the emulator as the parameter's string, which its poller cannot compare (no batch is ever
delivered); the lowering writes the parameter's default there as a number.
"""

import os
import stat
import sys
import zipfile

import yaml


class Loader(yaml.SafeLoader):
    """Reads CloudFormation's short tags (`!Ref`, `!GetAtt`, `!Sub` …) as their long forms."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {"Fn::" + suffix: value}


Loader.add_multi_constructor("!", _tag)


def load(path):
    with open(path) as f:
        return yaml.load(f, Loader=Loader)


def lower(template):
    """Adds the native routes and integrations; returns the route keys. There is no authorizer:
    every function authenticates its caller itself."""
    res = template["Resources"]
    api = next(k for k, r in res.items() if r["Type"] == "AWS::Serverless::HttpApi")
    added = {}
    keys = []
    for name, r in res.items():
        if r["Type"] != "AWS::Serverless::Function":
            continue
        for event, e in (r["Properties"].get("Events") or {}).items():
            if e["Type"] != "HttpApi":
                continue
            p = e["Properties"]
            # An event without a path and method is the API's $default route.
            key = f'{p["Method"].upper()} {p["Path"]}' if "Path" in p else "$default"
            integration = f"{name}{event}Integration"
            added[integration] = {
                "Type": "AWS::ApiGatewayV2::Integration",
                "Properties": {
                    "ApiId": {"Ref": api},
                    "IntegrationType": "AWS_PROXY",
                    "PayloadFormatVersion": "2.0",
                    "IntegrationUri": {"Fn::GetAtt": [name, "Arn"]},
                },
            }
            added[f"{name}{event}Route"] = {
                "Type": "AWS::ApiGatewayV2::Route",
                "Properties": {
                    "ApiId": {"Ref": api},
                    "RouteKey": key,
                    "Target": {"Fn::Sub": f"integrations/${{{integration}}}"},
                    "AuthorizationType": "NONE",
                },
            }
            keys.append(key)
    res.update(added)
    return keys


def numbers_for_the_emulator(template):
    """`MaximumConcurrency: !Ref P` → P's default, as a number (see the module's note)."""
    params = template.get("Parameters", {})
    for r in template["Resources"].values():
        for event in (r.get("Properties", {}).get("Events") or {}).values():
            scaling = (event.get("Properties") or {}).get("ScalingConfig") or {}
            ref = scaling.get("MaximumConcurrency")
            if isinstance(ref, dict) and "Ref" in ref:
                scaling["MaximumConcurrency"] = int(params[ref["Ref"]]["Default"])


def prepare(template_path, bin_dir, out_dir, without_policies=None):
    template = load(template_path)
    if without_policies:
        template["Resources"][without_policies]["Properties"].pop("Policies")
    os.makedirs(out_dir, exist_ok=True)
    for name, r in template["Resources"].items():
        if r["Type"] != "AWS::Serverless::Function":
            continue
        binary = r["Metadata"]["BuildProperties"]["Binary"]
        r.pop("Metadata")
        archive = os.path.join(out_dir, f"{binary}.zip")
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
            info = zipfile.ZipInfo("bootstrap")
            info.external_attr = (stat.S_IFREG | 0o755) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(os.path.join(bin_dir, binary), "rb") as f:
                z.writestr(info, f.read())
        r["Properties"]["CodeUri"] = os.path.abspath(archive)
    keys = lower(template)
    numbers_for_the_emulator(template)
    with open(os.path.join(out_dir, "template.yaml"), "w") as f:
        yaml.safe_dump(template, f, sort_keys=False)
    print(f"deploy_local.py: {len(keys)} routes lowered", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "prepare":
        prepare(*sys.argv[2:])
    elif len(sys.argv) == 7 and sys.argv[1] == "prepare" and sys.argv[5] == "--without-policies":
        prepare(*sys.argv[2:5], without_policies=sys.argv[6])
    elif len(sys.argv) == 3 and sys.argv[1] == "routes":
        print("\n".join(lower(load(sys.argv[2]))))
    else:
        sys.exit(__doc__)

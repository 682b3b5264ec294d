#!/usr/bin/env bash
# shellcheck disable=SC2016  # the planted sed expressions hold ${...} and $a literally
# tests/terraform: infrastructure/terraform checked by OpenTofu 1.12.6 where it can be, and by
# tests/terraform/check-refs.py where it cannot.
#
#   test_terraform.sh SRCDIR
#
# `tofu validate` / `plan` of the real configuration need the AWS provider's schema, which these
# machines cannot fetch (the Go proxy only has aws v1.60.0).  So, with the real tofu:
#   - `tofu fmt -check -recursive` (parses every .tf file; fails on a syntax error or bad layout);
#   - variables.tf alone in a scratch module (no provider): `tofu plan` with
#     terraform.tfvars.example evaluates every type and validation block, and bad values fail;
#   - the cloud-init template rendered by `templatefile` for every role (no provider), then read
#     as YAML: #cloud-config, node.env (this node's compose services), the bootstrap script
#     embedded byte for byte;
#   - main.tf's locals evaluated (variables.tf + the locals block, AMI lookups stubbed) and
#     checked by check-placement.py against the compose files and the local stack: every compose
#     service placed on exactly one node, each role's security group opens exactly the ports its
#     services listen on (stack.yml's ports and the compose files' published ones), every service
#     name resolves to its host;
# and with check-refs.py: every var./local./module./data./resource reference resolves, every
# variable and local is used, module arguments match the module's variables, templatefile's
# variables match the template (see its docstring).
# Then planted errors, each in a copy, must fail for the reason planted.
# Exit 77 (skipped, never passed) when OpenTofu 1.12.6 is not built (scripts/install-tofu.sh).
set -uo pipefail

src=$(cd "${1:?usage: test_terraform.sh SRCDIR}" && pwd)
tf=$src/infrastructure/terraform
if ! "$src/scripts/install-tofu.sh" --check 2>/dev/null; then
    echo "SKIP: OpenTofu 1.12.6 is not built at $("$src/scripts/install-tofu.sh" --path) (run scripts/install-tofu.sh, ~6 min)"
    exit 77
fi
tofu=$("$src/scripts/install-tofu.sh" --path)
py=/usr/bin/python3
if ! [[ -x $py ]] || ! $py -c 'import yaml' 2>/dev/null; then
    echo "SKIP: /usr/bin/python3 with yaml (python3-yaml) is missing"
    exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# No CLI configuration, no plugin cache, no checkpoint calls: nothing leaves this machine.
: >"$tmp/tofurc"
export TF_CLI_CONFIG_FILE=$tmp/tofurc CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0
unset TF_PLUGIN_CACHE_DIR TF_DATA_DIR

passed=0 failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }

# ---- the real configuration
if out=$(cd "$tf" && "$tofu" fmt -check -recursive -diff 2>&1); then
    ok "tofu fmt -check -recursive"
else
    bad "tofu fmt -check -recursive: $out"
fi
if out=$($py "$src/tests/terraform/check-refs.py" "$tf" 2>&1); then
    ok "${out##*$'\n'}"
else
    bad "check-refs.py: $out"
fi

# variables.tf alone: every validation evaluated by tofu itself
mkdir -p "$tmp/vars"
cp "$tf/variables.tf" "$tmp/vars/"
(cd "$tmp/vars" && "$tofu" init -backend=false >/dev/null 2>&1)
plan_vars() { (cd "$tmp/vars" && "$tofu" plan -no-color -lock=false -var-file="$tf/terraform.tfvars.example" "$@" 2>&1); }
if out=$(plan_vars); then
    ok "variables.tf: terraform.tfvars.example passes every type and validation (tofu plan)"
else
    bad "variables.tf with terraform.tfvars.example: $out"
fi
reject_var() { # WHAT PATTERN -var ...
    local what=$1 pat=$2
    shift 2
    if out=$(plan_vars "$@"); then
        bad "variables.tf accepted $what"
    elif grep -q "$pat" <<<"$out"; then
        ok "variables.tf rejects $what"
    else
        bad "variables.tf rejected $what, but not with '$pat': $(grep -m3 -i error <<<"$out")"
    fi
}
reject_var "admin_cidr_blocks = 0.0.0.0/0" "not 0.0.0.0/0" -var 'admin_cidr_blocks=["0.0.0.0/0"]'
reject_var "two availability zones" "exactly three" -var 'availability_zones=["a","b"]'
reject_var "a 10 GB database volume" "db_volume_size_gb must be" -var db_volume_size_gb=10
reject_var "a 16 GiB Redis type" "at least 128 GiB" -var redis_instance_type=r6i.large
reject_var "vpc_cidr that is no CIDR" "between /8 and /20" -var vpc_cidr=garbage
reject_var "a /24 VPC" "between /8 and /20" -var vpc_cidr=10.1.2.0/24
reject_var "a CPU type for the GPU servers" "NVIDIA GPU family" -var gpu_instance_type=m6i.large

# cloud-init rendered for every role by tofu's templatefile, then read back
roles=(db kafka redis gpu monitoring)
{
    echo 'locals {'
    echo '  common = {'
    echo '    environment = "production", region = "us-east-1", repo_url = "https://example.org/ut.git"'
    echo '    repo_ref = "main", compose_parts = "timescale", dns_domain = "ut.internal"'
    echo '    node_services = [["etcd", "pg1"], ["pg2", "x"], ["pg3"]]'
    echo '    peers = { UT_DB_IPS = "10.40.0.10,10.40.1.11,10.40.2.12" }'
    echo "    bootstrap = file(\"$tf/templates/host-bootstrap\")"
    echo '    index = 1, hostname = "ut-x-2", private_ip = "10.40.1.11"'
    echo '  }'
    echo '}'
    for r in "${roles[@]}"; do
        echo "output \"$r\" {"
        echo "  value = templatefile(\"$tf/templates/cloud-init.yaml.tftpl\", merge(local.common, { role = \"$r\", data_dir = \"${r/gpu/}\" == \"\" ? \"\" : \"/var/lib/ultrathink\" }))"
        echo '}'
    done
} >"$tmp/render.tf"
mkdir -p "$tmp/render" && mv "$tmp/render.tf" "$tmp/render/main.tf"
if out=$(cd "$tmp/render" && "$tofu" init -backend=false >/dev/null 2>&1 &&
    "$tofu" apply -no-color -auto-approve -lock=false -state="$tmp/render.tfstate" 2>&1 >/dev/null &&
    "$tofu" output -state="$tmp/render.tfstate" -json 2>&1 >"$tmp/rendered.json"); then
    if out=$($py - "$tmp/rendered.json" "$tf/templates/host-bootstrap" <<'PY' 2>&1
import json, sys, yaml
rendered = json.load(open(sys.argv[1]))
bootstrap = open(sys.argv[2]).read()
for role, o in sorted(rendered.items()):
    text = o["value"]
    assert text.startswith("#cloud-config\n"), f"{role}: no #cloud-config header"
    doc = yaml.safe_load(text)
    files = {f["path"]: f for f in doc["write_files"]}
    env = dict(l.split("=", 1) for l in files["/etc/ultrathink/node.env"]["content"].splitlines())
    assert env["UT_ROLE"] == role and env["UT_NODE_INDEX"] == "2", f"{role}: node.env {env}"
    assert env["UT_DB_IPS"] == "10.40.0.10,10.40.1.11,10.40.2.12", f"{role}: peers"
    assert env["UT_COMPOSE_SERVICES"] == '"pg2 x"', f"{role}: this node's services {env}"
    got = files["/usr/local/sbin/ultrathink-bootstrap"]["content"]
    assert got == bootstrap, f"{role}: the embedded bootstrap differs from templates/host-bootstrap"
    assert doc["runcmd"] == [["/usr/local/sbin/ultrathink-bootstrap"]], f"{role}: runcmd"
    docker = "docker.io" in doc["packages"]
    assert docker == (role != "gpu"), f"{role}: docker packages {doc['packages']}"
print(f"{len(rendered)} roles")
PY
    ); then
        ok "cloud-init rendered by tofu for $out: valid YAML, node.env, bootstrap embedded intact"
    else
        bad "rendered cloud-init: $out"
    fi
else
    bad "tofu could not render the cloud-init template: $out"
fi

# main.tf's locals evaluated by tofu (with variables.tf, no provider: the two AMI lookups are
# stubbed), then checked against the compose files and the local stack by check-placement.py.
eval_locals() { # TFDIR OUTDIR: tofu output -json of main.tf's locals into OUTDIR/locals.json
    local dir=$2/locals
    rm -rf "$dir" && mkdir -p "$dir"
    cp "$1/variables.tf" "$dir/"
    cp "$1/../topology.yml" "$2/topology.yml" 2>/dev/null || true # main.tf reads ../topology.yml
    $py - "$1/main.tf" "$dir/locals.tf" <<'PY' || return 1
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"^locals \{\n.*?^\}\n", text, re.S | re.M)
block = m.group(0).replace("data.aws_ami.ubuntu[0].id", '"ami-ubuntu"').replace("data.aws_ami.gpu[0].id", '"ami-gpu"')
names = re.findall(r"^  ([a-z_]+) +=", block, re.M)
with open(sys.argv[2], "w") as f:
    f.write(block)
    for n in names:
        f.write(f'output "{n}" {{\n  value = local.{n}\n}}\n')
PY
    (cd "$dir" && "$tofu" init -backend=false >/dev/null 2>&1 &&
        "$tofu" apply -no-color -auto-approve -lock=false -state="$dir/s.tfstate" \
            -var-file="$1/terraform.tfvars.example" >/dev/null &&
        "$tofu" output -no-color -state="$dir/s.tfstate" -json >"$2/locals.json")
}
if out=$(eval_locals "$tf" "$tmp" 2>&1); then
    if out=$($py "$src/tests/terraform/check-placement.py" "$tmp/locals.json" "$src" 2>&1); then
        ok "main.tf's locals evaluated by tofu; ${out##*check-placement: }"
    else
        bad "placement and security groups: $out"
    fi
else
    bad "tofu could not evaluate main.tf's locals: $out"
fi

# ---- planted errors: each copy must fail, for the reason planted
plant() { # WHAT FILE SED-EXPR PATTERN CHECK(fmt|refs)
    local what=$1 file=$2 expr=$3 pat=$4 which=$5 copy=$tmp/planted/terraform out
    rm -rf "$tmp/planted"
    mkdir -p "$tmp/planted"
    cp -r "$tf" "$copy"
    cp "$tf/../topology.yml" "$tmp/planted/topology.yml"
    sed -i "$expr" "$copy/$file"
    if cmp -s "$copy/$file" "$tf/$file"; then
        bad "planted $what: the edit changed nothing"
        return
    fi
    if [[ $which == placement ]]; then
        out=$(eval_locals "$copy" "$copy" 2>&1 &&
            $py "$src/tests/terraform/check-placement.py" "$copy/locals.json" "$src" 2>&1)
    elif [[ $which == fmt ]]; then
        out=$(cd "$copy" && "$tofu" fmt -check -recursive -no-color 2>&1)
    else
        out=$($py "$src/tests/terraform/check-refs.py" "$copy" 2>&1)
    fi
    local rc=$?
    if ((rc == 0)); then
        bad "planted $what: accepted by $which"
    elif grep -q -- "$pat" <<<"$out"; then
        ok "planted $what: rejected by $which ($(grep -m1 -- "$pat" <<<"$out" | sed "s|$copy/||; s/^ *//" | cut -c1-110))"
    else
        bad "planted $what: rejected by $which, but not with '$pat': $(head -3 <<<"$out")"
    fi
}
plant "mis-formatted assignment" outputs.tf 's/^  value       = aws_vpc.main.id/  value = aws_vpc.main.id/' outputs.tf fmt
plant "missing closing brace" variables.tf '0,/^}$/{/^}$/d}' "Error" fmt
plant "missing closing brace" variables.tf '0,/^}$/{/^}$/d}' "never closed\|expected" refs
plant "undeclared variable" main.tf '0,/cidr_block           = var.vpc_cidr/s//cidr_block           = var.vpc_cidrs/' "var.vpc_cidrs is not a declared variable" refs
plant "unused variable" variables.tf '$a\\nvariable "spare" {\n  type = string\n}' "variable spare is declared but never used" refs
plant "output of a missing resource" outputs.tf 's/aws_vpc.main.id/aws_vpc.primary.id/' "aws_vpc.primary is not a declared resource" refs
plant "missing module output" outputs.tf 's/module.hosts\["db"\].private_ips/module.hosts["db"].private_ip/' "has no output private_ip" refs
plant "unknown module argument" main.tf 's/^  data_volume_iops     = each.value.volume_iops/&\n  data_volume_type = "io2"/' "has no variable data_volume_type" refs
plant "missing local" main.tf 's/local.host_offset\[role\]/local.host_offsets[role]/' "local.host_offsets is not a declared local" refs
plant "template name not given" templates/cloud-init.yaml.tftpl 's/\${repo_ref}/${repo_branch}/' "uses repo_branch" refs
plant "count.index without count" modules/host/main.tf 's/device_name = "\/dev\/sdf"/device_name = "\/dev\/sd${count.index}"/; s/^  count       = var.data_volume_size_gb > 0 ? local.count : 0$//' "outside a block with count" refs
plant "a service on no node" ../topology.yml 's/\[etcd3, pg3\]/[etcd3]/' "compose service pg3 runs on no node" placement
plant "a service on two nodes" ../topology.yml 's/\[kafka3\]\]/[kafka3, kafka1]]/' "kafka1 is placed twice" placement
plant "a port not opened" main.tf 's/\] if try(local.topology.services\[n\].published, true)/] if try(local.topology.services[n].published, true) \&\& n != "sentinel1"/' "role redis: a service listens on 26380" placement
plant "a port nothing uses" ../topology.yml 's/systemd: \[gpu-agent, rolloutd\]/systemd: [gpu-agent, rolloutd, grafana]/' "role gpu: the security group opens 3000" placement

echo "$passed passed, $failed failed"
((failed == 0))

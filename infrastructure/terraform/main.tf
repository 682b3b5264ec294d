# The ultrathink production stack on AWS (docs/deploy-terraform.md): a VPC over three zones,
# 2 GPU servers, 3 database nodes, 3 Kafka nodes, 2 Redis nodes and a monitoring host, each
# bootstrapped by cloud-init to run its part (docker compose with the repository's compose file
# for its role, or on the GPU servers our systemd units).
#
# Checked here by `tofu fmt -check` and tests/terraform/check-refs.py (every reference resolves);
# `tofu validate` needs the AWS provider's schema, which cannot be fetched on these machines.

terraform {
  required_version = ">= 1.8.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.90"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge({
      Project     = "ultrathink"
      Environment = var.environment
      ManagedBy   = "terraform"
    }, var.tags)
  }
}

locals {
  name = "ultrathink-${var.environment}"

  # Hosts, placement and service ports: infrastructure/topology.yml, the one source of truth
  # (infrastructure/scripts/check-topology.py compares the compose files and the local stack
  # with it, and this configuration's variable defaults).
  topology = yamldecode(file("${path.module}/../topology.yml"))

  # Every port of a published service (topology.yml `published`, default true), keyed
  # SERVICE-PORTNAME, as [from, to]: each cluster member has ports of its own, so it keeps them
  # wherever it runs.  The exporters Prometheus scrapes on its own host publish nothing.
  service_ports = merge([
    for name, s in local.topology.services : {
      for k, p in s.ports : "${name}-${k}" => [p, p]
    } if try(s.published, true) && contains(try(s.environments, ["production"]), "production")
  ]...)
  ports = merge(local.service_ports, { ssh = [22, 22] })

  # What each role listens on (the services its hosts run, compose or systemd), open to the VPC
  # CIDR only (SSH and Grafana also to admin_cidr_blocks); node-exporter is in the common group.
  role_ports = {
    for role, h in local.topology.hosts : role => flatten([
      for n in distinct(concat(flatten(h.services), try(h.systemd, []))) : [
        for k, p in local.topology.services[n].ports : "${n}-${k}"
      ] if try(local.topology.services[n].published, true)
    ])
  }

  ingress_rules = merge([
    for role, names in local.role_ports : {
      for n in names : "${role}-${n}" => { role = role, from = local.ports[n][0], to = local.ports[n][1], name = n }
    }
  ]...)

  # Addressing: three private /24s (one per zone) and a public one for the NAT gateway.  Every
  # host has a fixed private address, so that each node's cloud-init can name its peers (etcd's
  # initial cluster, Kafka's controller quorum, Sentinel's monitored primary) before any exists.
  private_subnet_cidrs = [for i in range(3) : cidrsubnet(var.vpc_cidr, 24 - tonumber(split("/", var.vpc_cidr)[1]), i)]
  public_subnet_cidr   = cidrsubnet(var.vpc_cidr, 24 - tonumber(split("/", var.vpc_cidr)[1]), 3)

  host_offset = { db = 10, kafka = 20, redis = 30, gpu = 40, monitoring = 50 }
  host_count  = { for role, h in local.topology.hosts : role => h.count }
  host_ips = {
    for role, n in local.host_count : role => [
      for i in range(n) : cidrhost(local.private_subnet_cidrs[i % 3], local.host_offset[role] + i)
    ]
  }

  ubuntu_ami = var.ami_id != null ? var.ami_id : data.aws_ami.ubuntu[0].id
  gpu_ami    = var.gpu_ami_id != null ? var.gpu_ami_id : data.aws_ami.gpu[0].id

  roles = {
    db = {
      instance_type  = var.db_instance_type
      ami            = local.ubuntu_ami
      volume_size_gb = var.db_volume_size_gb
      volume_iops    = var.db_volume_iops
      compose_parts  = local.topology.hosts.db.compose_parts
    }
    kafka = {
      instance_type  = var.kafka_instance_type
      ami            = local.ubuntu_ami
      volume_size_gb = var.kafka_volume_size_gb
      volume_iops    = 3000
      compose_parts  = local.topology.hosts.kafka.compose_parts
    }
    redis = {
      instance_type  = var.redis_instance_type
      ami            = local.ubuntu_ami
      volume_size_gb = local.topology.hosts.redis.volume_gb
      volume_iops    = 3000
      compose_parts  = local.topology.hosts.redis.compose_parts
    }
    gpu = {
      instance_type  = var.gpu_instance_type
      ami            = local.gpu_ami
      volume_size_gb = local.topology.hosts.gpu.volume_gb
      volume_iops    = 3000
      compose_parts  = local.topology.hosts.gpu.compose_parts
    }
    monitoring = {
      instance_type  = var.monitoring_instance_type
      ami            = local.ubuntu_ami
      volume_size_gb = var.monitoring_volume_size_gb
      volume_iops    = 3000
      compose_parts  = local.topology.hosts.monitoring.compose_parts
    }
  }

  # Which compose services run on which host of a role (node i runs node_services[role][i]):
  # topology.yml hosts.ROLE.services, which the host's bootstrap starts with
  # `compose.sh --role ROLE --node I up -d` (it reads the same file).  The one-shots pg-init
  # and kafka-topics are started by hand once every member is up (docs/deploy.md).
  node_services = { for role, h in local.topology.hosts : role => h.services }

  # Every compose service name resolves, on the hosts and in their containers (the VPC's DHCP
  # options make var.dns_domain the search domain), to the host it runs on; the GPU servers
  # add rolloutd (on the first) and gpu-agent, server1, server2.
  service_ips = merge(
    merge([
      for role, nodes in local.node_services : merge([
        for i, names in nodes : { for n in names : n => local.host_ips[role][i] }
      ]...)
    ]...),
    {
      rolloutd    = local.host_ips["gpu"][0]
      "gpu-agent" = local.host_ips["gpu"][0]
      server1     = local.host_ips["gpu"][0]
      server2     = local.host_ips["gpu"][1]
    }
  )

  # Every host learns every cluster's members (written to /etc/ultrathink/node.env).
  peers = {
    UT_DB_IPS         = join(",", local.host_ips["db"])
    UT_KAFKA_IPS      = join(",", local.host_ips["kafka"])
    UT_REDIS_IPS      = join(",", local.host_ips["redis"])
    UT_GPU_IPS        = join(",", local.host_ips["gpu"])
    UT_MONITORING_IPS = join(",", local.host_ips["monitoring"])
  }
}

data "aws_caller_identity" "current" {}

data "aws_ami" "ubuntu" {
  count       = var.ami_id == null ? 1 : 0
  most_recent = true
  owners      = ["099720109477"] # Canonical

  filter {
    name   = "name"
    values = ["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"]
  }
}

data "aws_ami" "gpu" {
  count       = var.gpu_ami_id == null ? 1 : 0
  most_recent = true
  owners      = ["amazon"]

  filter {
    name   = "name"
    values = ["Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *"]
  }
}

# ------------------------------------------------------------------ network

resource "aws_vpc" "main" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = local.name }
}

resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
  tags   = { Name = local.name }
}

resource "aws_subnet" "public" {
  vpc_id            = aws_vpc.main.id
  cidr_block        = local.public_subnet_cidr
  availability_zone = var.availability_zones[0]

  tags = { Name = "${local.name}-public" }
}

resource "aws_subnet" "private" {
  count             = 3
  vpc_id            = aws_vpc.main.id
  cidr_block        = local.private_subnet_cidrs[count.index]
  availability_zone = var.availability_zones[count.index]

  tags = { Name = "${local.name}-private-${var.availability_zones[count.index]}" }
}

resource "aws_eip" "nat" {
  domain = "vpc"
  tags   = { Name = "${local.name}-nat" }
}

# Outbound only (packages, images, the repository): no host has a public address.
resource "aws_nat_gateway" "main" {
  allocation_id = aws_eip.nat.id
  subnet_id     = aws_subnet.public.id
  tags          = { Name = local.name }

  depends_on = [aws_internet_gateway.main]
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.main.id
  }

  tags = { Name = "${local.name}-public" }
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.main.id

  route {
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = aws_nat_gateway.main.id
  }

  tags = { Name = "${local.name}-private" }
}

resource "aws_route_table_association" "private" {
  count          = 3
  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private.id
}

# ------------------------------------------------------------------ names

resource "aws_route53_zone" "internal" {
  name = var.dns_domain

  vpc {
    vpc_id = aws_vpc.main.id
  }
}

resource "aws_route53_record" "service" {
  for_each = local.service_ips
  zone_id  = aws_route53_zone.internal.zone_id
  name     = "${each.key}.${var.dns_domain}"
  type     = "A"
  ttl      = 60
  records  = [each.value]
}

resource "aws_vpc_dhcp_options" "main" {
  domain_name         = var.dns_domain
  domain_name_servers = ["AmazonProvidedDNS"]
  tags                = { Name = local.name }
}

resource "aws_vpc_dhcp_options_association" "main" {
  vpc_id          = aws_vpc.main.id
  dhcp_options_id = aws_vpc_dhcp_options.main.id
}

# ------------------------------------------------------------------ security groups

# Every host: SSH from the admin blocks, node_exporter from the VPC, all egress.
resource "aws_security_group" "common" {
  name        = "${local.name}-common"
  description = "ultrathink: SSH from admin CIDRs, node_exporter from the VPC"
  vpc_id      = aws_vpc.main.id
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  for_each          = toset(var.admin_cidr_blocks)
  security_group_id = aws_security_group.common.id
  description       = "ssh from admin"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = local.ports["ssh"][0]
  to_port           = local.ports["ssh"][1]
}

resource "aws_vpc_security_group_ingress_rule" "node_exporter" {
  security_group_id = aws_security_group.common.id
  description       = "node_exporter from the VPC"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "tcp"
  from_port         = local.ports["node-exporter-http"][0]
  to_port           = local.ports["node-exporter-http"][1]
}

resource "aws_vpc_security_group_egress_rule" "all" {
  security_group_id = aws_security_group.common.id
  description       = "all egress (through the NAT gateway)"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
}

# One group per role with exactly the ports of local.role_ports.
resource "aws_security_group" "role" {
  for_each    = local.role_ports
  name        = "${local.name}-${each.key}"
  description = "ultrathink ${each.key}: its service ports from the VPC"
  vpc_id      = aws_vpc.main.id
}

resource "aws_vpc_security_group_ingress_rule" "service" {
  for_each          = local.ingress_rules
  security_group_id = aws_security_group.role[each.value.role].id
  description       = "${each.value.name} from the VPC"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "tcp"
  from_port         = each.value.from
  to_port           = each.value.to
}

resource "aws_vpc_security_group_ingress_rule" "grafana_admin" {
  for_each          = toset(var.admin_cidr_blocks)
  security_group_id = aws_security_group.role["monitoring"].id
  description       = "grafana from admin"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = local.ports["grafana-http"][0]
  to_port           = local.ports["grafana-http"][1]
}

# ------------------------------------------------------------------ instance identity

# Hosts read their secrets from SSM Parameter Store (/ultrathink/<environment>/...) at boot;
# nothing secret is in user data or in this configuration.  Session Manager replaces a bastion.
resource "aws_iam_role" "host" {
  name = "${local.name}-host"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy_attachment" "ssm_core" {
  role       = aws_iam_role.host.name
  policy_arn = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_role_policy" "secrets" {
  name = "${local.name}-secrets"
  role = aws_iam_role.host.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["ssm:GetParametersByPath", "ssm:GetParameter"]
      Resource = "arn:aws:ssm:${var.region}:${data.aws_caller_identity.current.account_id}:parameter/ultrathink/${var.environment}/*"
    }]
  })
}

resource "aws_iam_instance_profile" "host" {
  name = "${local.name}-host"
  role = aws_iam_role.host.name
}

# ------------------------------------------------------------------ hosts

module "hosts" {
  source   = "./modules/host"
  for_each = local.roles

  name                 = "${local.name}-${each.key}"
  role                 = each.key
  instance_type        = each.value.instance_type
  ami_id               = each.value.ami
  subnet_ids           = [for i in range(local.host_count[each.key]) : aws_subnet.private[i % 3].id]
  private_ips          = local.host_ips[each.key]
  security_group_ids   = [aws_security_group.common.id, aws_security_group.role[each.key].id]
  iam_instance_profile = aws_iam_instance_profile.host.name
  key_name             = var.ssh_key_name
  data_volume_size_gb  = each.value.volume_size_gb
  data_volume_iops     = each.value.volume_iops

  user_data_template = "${path.module}/templates/cloud-init.yaml.tftpl"
  user_data_vars = {
    role          = each.key
    environment   = var.environment
    region        = var.region
    repo_url      = var.repo_url
    repo_ref      = var.repo_ref
    compose_parts = join(" ", each.value.compose_parts)
    node_services = local.node_services[each.key]
    dns_domain    = var.dns_domain
    data_dir      = each.value.volume_size_gb > 0 ? "/var/lib/ultrathink" : ""
    peers         = local.peers
    bootstrap     = file("${path.module}/templates/host-bootstrap")
  }
}

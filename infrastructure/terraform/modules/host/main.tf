# N identical hosts of one role: an instance per fixed private address, each with its own
# cloud-init user data, and (when data_volume_size_gb > 0) a gp3 data volume attached to it.

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

locals {
  count = length(var.private_ips)
}

resource "aws_instance" "this" {
  count                  = local.count
  ami                    = var.ami_id
  instance_type          = var.instance_type
  subnet_id              = var.subnet_ids[count.index]
  private_ip             = var.private_ips[count.index]
  vpc_security_group_ids = var.security_group_ids
  iam_instance_profile   = var.iam_instance_profile
  key_name               = var.key_name
  ebs_optimized          = true
  monitoring             = true

  user_data = templatefile(var.user_data_template, merge(var.user_data_vars, {
    index      = count.index
    hostname   = "${var.name}-${count.index + 1}"
    private_ip = var.private_ips[count.index]
  }))

  metadata_options {
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = 2          # containers on the host may ask for the role
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.root_volume_size_gb
    encrypted             = true
    delete_on_termination = true
  }

  tags = { Name = "${var.name}-${count.index + 1}", Role = var.role }

  # A new AMI or changed bootstrap must not replace a running database node: roll those by hand.
  lifecycle {
    ignore_changes = [ami, user_data]
  }
}

resource "aws_ebs_volume" "data" {
  count             = var.data_volume_size_gb > 0 ? local.count : 0
  availability_zone = aws_instance.this[count.index].availability_zone
  type              = "gp3"
  size              = var.data_volume_size_gb
  iops              = var.data_volume_iops
  encrypted         = true

  tags = { Name = "${var.name}-${count.index + 1}-data", Role = var.role }
}

resource "aws_volume_attachment" "data" {
  count       = var.data_volume_size_gb > 0 ? local.count : 0
  device_name = "/dev/sdf"
  volume_id   = aws_ebs_volume.data[count.index].id
  instance_id = aws_instance.this[count.index].id
}

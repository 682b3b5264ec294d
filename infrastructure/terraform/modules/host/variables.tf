variable "name" {
  type        = string
  description = "Name prefix of the hosts (each is NAME-1, NAME-2, ...)."
}

variable "role" {
  type        = string
  description = "The hosts' role, tagged and passed to cloud-init."

  validation {
    condition     = contains(["db", "kafka", "redis", "gpu", "monitoring"], var.role)
    error_message = "role must be one of db, kafka, redis, gpu, monitoring."
  }
}

variable "instance_type" {
  type        = string
  description = "EC2 instance type."
}

variable "ami_id" {
  type        = string
  description = "AMI of the hosts."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Subnet of each host, in the order of private_ips."
}

variable "private_ips" {
  type        = list(string)
  description = "Fixed private address of each host; their number is the number of hosts."

  validation {
    condition     = length(var.private_ips) > 0 && alltrue([for ip in var.private_ips : can(cidrhost("${ip}/32", 0))])
    error_message = "private_ips must hold at least one IPv4 address."
  }
}

variable "security_group_ids" {
  type        = list(string)
  description = "Security groups of every host."
}

variable "iam_instance_profile" {
  type        = string
  description = "Instance profile (reads the environment's SSM parameters)."
}

variable "key_name" {
  type        = string
  description = "EC2 key pair for SSH, or null."
  default     = null
}

variable "root_volume_size_gb" {
  type        = number
  description = "Root volume (gp3) in GB: OS, container images, the repository and its build."
  default     = 100

  validation {
    condition     = var.root_volume_size_gb >= 30
    error_message = "root_volume_size_gb must be at least 30."
  }
}

variable "data_volume_size_gb" {
  type        = number
  description = "gp3 data volume per host in GB (mounted at /var/lib/ultrathink by cloud-init); 0 for none."
  default     = 0

  validation {
    condition     = var.data_volume_size_gb == 0 || (var.data_volume_size_gb >= 1 && var.data_volume_size_gb <= 16384)
    error_message = "data_volume_size_gb must be 0 or within 1..16384."
  }
}

variable "data_volume_iops" {
  type        = number
  description = "gp3 IOPS of the data volume."
  default     = 3000
}

variable "user_data_template" {
  type        = string
  description = "Path of the cloud-init template (templatefile)."
}

variable "user_data_vars" {
  type        = any
  description = "Template variables; index, hostname and private_ip are added per host."
}

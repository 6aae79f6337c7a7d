# Trust policies of the roles AWS services assume for this stack, one per service principal.
locals {
  service_trust = {
    for service in ["eks", "ec2", "vpc-flow-logs", "monitoring.rds"] : service => jsonencode({
      Version = "2012-10-17"
      Statement = [{
        Effect    = "Allow"
        Principal = { Service = "${service}.amazonaws.com" }
        Action    = "sts:AssumeRole"
      }]
    })
  }
}

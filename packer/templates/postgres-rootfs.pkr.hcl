# The production image: Debian bookworm + PostgreSQL 18 from PGDG, provisioned by the same
# numbered scripts scripts/build-image.sh runs in a local debootstrap chroot, then exported
# and turned into an ext4 rootfs by post-process.sh (tiers and bless are GlideFS steps).
#
#   deno task build && packer build -var pg_major=18 packer/templates/postgres-rootfs.pkr.hcl

packer {
  required_plugins {
    docker = {
      source  = "github.com/hashicorp/docker"
      version = ">= 1.0.0"
    }
  }
}

variable "pg_major" {
  type    = string
  default = "18"
}

variable "pg_source" {
  type    = string
  default = "pgdg"
}

variable "dist" {
  type    = string
  default = "dist"
}

variable "output" {
  type    = string
  default = "out/postgres-rootfs.tar"
}

source "docker" "bookworm" {
  image       = "debian:bookworm-slim"
  export_path = var.output
  changes     = ["ENTRYPOINT [\"/sbin/init\"]"]
}

build {
  sources = ["source.docker.bookworm"]

  provisioner "shell-local" {
    inline = ["deno run -A scripts/manifest-packages.ts ${var.pg_source} ${var.pg_major} out/packages.txt out/github.txt"]
  }

  provisioner "file" {
    sources     = ["packer/scripts", "conf", var.dist, "out/packages.txt", "out/github.txt"]
    destination = "/tmp/build/"
  }

  provisioner "shell" {
    environment_vars = [
      "PG_MAJOR=${var.pg_major}",
      "PG_SOURCE=${var.pg_source}",
      "PACKAGES_FILE=/tmp/build/packages.txt",
      "GITHUB_FILE=/tmp/build/github.txt",
      "BEYOND_PG_DIST=/tmp/build/dist",
      "BEYOND_PG_CONF=/tmp/build/conf",
    ]
    scripts = [
      "packer/scripts/01-base-packages.sh",
      "packer/scripts/02-postgres-install.sh",
      "packer/scripts/03-pgdg-extensions.sh",
      "packer/scripts/04-beyond-extensions.sh",
      "packer/scripts/05-pgbouncer-install.sh",
      "packer/scripts/06-beyond-pg-install.sh",
      "packer/scripts/07-config.sh",
      "packer/scripts/08-mmds.sh",
      "packer/scripts/09-seed.sh",
      "packer/scripts/10-cleanup.sh",
    ]
  }

  post-processor "shell-local" {
    inline = ["packer/scripts/post-process.sh ${var.output} out/postgres-rootfs.ext4"]
  }
}

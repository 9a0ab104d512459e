// Package deploy is the deployment files of this folder (systemd units,
// example configs, container files, the AWS template); its tests check them
// against the code they deploy. Its only code reads systemd unit files, for
// those tests and for the tests of the binaries the units run.
package deploy

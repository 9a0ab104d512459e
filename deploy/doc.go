// Package deploy holds no code: it is the deployment files of this folder
// (systemd units, example configs, container files, the AWS template), and
// its tests check them against the code they deploy.
package deploy

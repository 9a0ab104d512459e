// Command raceprobe prints whether it was built with the race detector:
// testenv's test of Binary.
package main

import "fmt"

func main() { fmt.Printf("race=%v\n", race) }

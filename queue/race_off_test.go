//go:build !race

package queue

const raceBuild = false

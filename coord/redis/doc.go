// Package redis is the coord.Coordinator on Redis and Redis Cluster.
package redis

package ssm

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
)

type legacyInstanceFilter struct {
	Key      string   `json:"key"`
	ValueSet []string `json:"valueSet"`
}

type instanceFilter struct {
	Key    string
	Values []string
}

type describeInstanceInformationInput struct {
	InstanceInformationFilterList []legacyInstanceFilter
	Filters                       []instanceFilter
	MaxResults                    *int64
	NextToken                     *string
}

type instanceInformation struct {
	InstanceId       string
	PingStatus       string
	LastPingDateTime *epoch
	AgentVersion     string
	IsLatestVersion  bool
	PlatformType     string
	PlatformName     string
	PlatformVersion  string
	ResourceType     string
	IPAddress        string
	ComputerName     string
	SourceId         string
	SourceType       string
}

type describeInstanceInformationOutput struct {
	InstanceInformationList []instanceInformation
	NextToken               string `json:",omitempty"`
}

// Filter keys of DescribeInstanceInformation; Filters also takes tag-key
// and tag:<key>. The lab's nodes are EC2 instances without activations,
// IAM role reports or associations, so ActivationIds, IamRole and
// AssociationStatus filters match none of them.
var instanceFilterKeys = []string{"InstanceIds", "AgentVersion", "PingStatus", "PlatformTypes", "ActivationIds", "IamRole", "ResourceType", "AssociationStatus"}

// defaultInstanceResults is DescribeInstanceInformation's page size when
// MaxResults is not given: 10, where the other listings give 50.
const defaultInstanceResults = 10

var instanceFilterValues = map[string][]string{
	"PingStatus":    {"Online", "ConnectionLost", "Inactive"},
	"PlatformTypes": {"Windows", "Linux", "MacOS"},
	"ResourceType":  {"EC2Instance", "ManagedInstance"},
}

// describeInstanceInformation lists managed nodes. As the API reference
// says, naming a node that is not registered is an error rather than an
// empty answer, tag filters cannot be mixed with other filters, and the
// legacy InstanceInformationFilterList cannot be mixed with Filters.
func (s *Service) describeInstanceInformation(_ context.Context, in *describeInstanceInformationInput) (*describeInstanceInformationOutput, error) {
	var v violations
	if in.MaxResults != nil {
		v.valueRange(*in.MaxResults, "maxResults", 5, 50)
	}
	filters := make([]instanceFilter, 0, len(in.InstanceInformationFilterList)+len(in.Filters))
	for i, f := range in.InstanceInformationFilterList {
		if n := len(f.ValueSet); n < 1 || n > 100 {
			v.add(f.ValueSet, fmt.Sprintf("instanceInformationFilterList.%d.member.valueSet", i+1), "Member must have length between 1 and 100")
		}
		filters = append(filters, instanceFilter{Key: f.Key, Values: f.ValueSet})
	}
	for i, f := range in.Filters {
		v.length(f.Key, fmt.Sprintf("filters.%d.member.key", i+1), 1, 0)
		if n := len(f.Values); n < 1 || n > 100 {
			v.add(f.Values, fmt.Sprintf("filters.%d.member.values", i+1), "Member must have length between 1 and 100")
		}
		filters = append(filters, f)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if len(in.InstanceInformationFilterList) > 0 && len(in.Filters) > 0 {
		return nil, awsjson.Errorf("ValidationException", "InstanceInformationFilterList and Filters can't be used together; use Filters.")
	}
	tags, others := 0, 0
	for i, f := range filters {
		legacy := i < len(in.InstanceInformationFilterList)
		if err := checkInstanceFilter(f, legacy); err != nil {
			return nil, err
		}
		if isTagFilter(f.Key) {
			tags++
		} else {
			others++
		}
	}
	if tags > 0 && others > 0 {
		return nil, awsjson.Errorf("InvalidFilterKey", "Tag filters can't be combined with other filter types.")
	}
	size := defaultInstanceResults
	if in.MaxResults != nil {
		size = int(*in.MaxResults)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range filters {
		if f.Key != "InstanceIds" {
			continue
		}
		for _, id := range f.Values {
			if _, ok := s.nodes[id]; !ok {
				return nil, awsjson.Errorf("InvalidInstanceId", "Instance %s is not a managed node of account %s.", id, s.account)
			}
		}
	}
	var list []instanceInformation
	for _, m := range s.nodes {
		info := s.instanceInformation(m)
		if matchesInstanceFilters(info, m.info.Tags, filters) {
			list = append(list, info)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].InstanceId < list[j].InstanceId })
	pg, next, err := awsjson.Page(s.pages, "DescribeInstanceInformation", deref(in.NextToken), size, list,
		func(i instanceInformation) string { return i.InstanceId })
	if err != nil {
		return nil, err
	}
	if pg == nil {
		pg = []instanceInformation{}
	}
	return &describeInstanceInformationOutput{InstanceInformationList: pg, NextToken: next}, nil
}

func checkInstanceFilter(f instanceFilter, legacy bool) error {
	tagFilter := !legacy && isTagFilter(f.Key)
	if !tagFilter && !slices.Contains(instanceFilterKeys, f.Key) {
		keys := strings.Join(instanceFilterKeys, ", ")
		if !legacy {
			keys += ", tag-key, tag:<key>"
		}
		return awsjson.Errorf("InvalidFilterKey", "%q is not an instance information filter key; use one of %s.", clip(f.Key), keys)
	}
	if f.Key == "InstanceIds" {
		for _, id := range f.Values {
			if !instanceIDPattern.MatchString(id) {
				return awsjson.Errorf("InvalidInstanceId", "Instance id %q is not valid: it must look like i-0123456789abcdef0.", clip(id))
			}
		}
	}
	if allowed, ok := instanceFilterValues[f.Key]; ok {
		for _, value := range f.Values {
			if !slices.Contains(allowed, value) {
				return awsjson.Errorf("InvalidInstanceInformationFilterValue", "%q is not a valid %s value; use one of %s.", clip(value), f.Key, strings.Join(allowed, ", "))
			}
		}
	}
	return nil
}

func isTagFilter(key string) bool {
	return key == "tag-key" || strings.HasPrefix(key, "tag:") && len(key) > 4
}

// instanceInformation reports a node as its agent would. Callers hold s.mu.
func (s *Service) instanceInformation(m *managedNode) instanceInformation {
	ping := "ConnectionLost"
	if s.online(m) {
		ping = "Online"
	}
	return instanceInformation{
		InstanceId:       m.info.InstanceID,
		PingStatus:       ping,
		LastPingDateTime: epochPtr(m.lastPing),
		AgentVersion:     m.info.AgentVersion,
		IsLatestVersion:  false,
		PlatformType:     m.info.PlatformType,
		PlatformName:     m.info.PlatformName,
		PlatformVersion:  m.info.PlatformVersion,
		ResourceType:     "EC2Instance",
		IPAddress:        m.info.IPAddress,
		ComputerName:     m.info.ComputerName,
		SourceId:         m.info.InstanceID,
		SourceType:       "AWS::EC2::Instance",
	}
}

func matchesInstanceFilters(info instanceInformation, tags map[string]string, filters []instanceFilter) bool {
	for _, f := range filters {
		var field string
		switch f.Key {
		case "InstanceIds":
			field = info.InstanceId
		case "AgentVersion":
			field = info.AgentVersion
		case "PingStatus":
			field = info.PingStatus
		case "PlatformTypes":
			field = info.PlatformType
		case "ResourceType":
			field = info.ResourceType
		case "tag-key":
			found := false
			for _, k := range f.Values {
				if _, ok := tags[k]; ok {
					found = true
				}
			}
			if !found {
				return false
			}
			continue
		default:
			if tagKey, ok := strings.CutPrefix(f.Key, "tag:"); ok {
				v, has := tags[tagKey]
				if !has || !slices.Contains(f.Values, v) {
					return false
				}
				continue
			}
			return false // ActivationIds, IamRole, AssociationStatus
		}
		if !slices.Contains(f.Values, field) {
			return false
		}
	}
	return true
}
